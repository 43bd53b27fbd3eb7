-- Every function defined in these migrations (0001 to 0009) runs with a fixed search_path,
-- so a caller's search_path (a schema it can create objects in, placed first) cannot
-- substitute a table, an operator or a function inside it (Supabase's linter: function_search_path_mutable).
-- The path is public, then the schema pgvector is installed in when that is another one
-- (Supabase puts extensions in "extensions"; the vector type and <=> live there), then
-- pg_temp last. pg_catalog is always searched first.
do $$
declare
    vector_schema text := (
        select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'vector'
    );
    path text := case
        when vector_schema is null or vector_schema in ('public', 'pg_catalog') then 'public, pg_temp'
        else format('public, %I, pg_temp', vector_schema)
    end;
    fn regprocedure;
begin
    -- Every function of the public schema that is not an extension's own (pgvector's).
    for fn in
        select p.oid::regprocedure
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public'
          and not exists (
              select 1 from pg_depend d
              where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
          )
    loop
        execute format('alter function %s set search_path = %s', fn, path);
    end loop;
end
$$;
