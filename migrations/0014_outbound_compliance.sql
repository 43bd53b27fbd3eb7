-- Consent and the 24-hour customer service window, where people look (issue: privacy).
--
-- chats.service_window_closes_at: when the contact's last message opened a window that closes
-- 24 hours later (WhatsApp lets the business send free-form messages inside it, templates only
-- outside). Maintained by the messages projector with last_inbound_at.
--
-- chat_consent_changes: every opt-out/opt-in (ConsentChanged on wa.messages), so a message can
-- be judged by the consent in force when it was sent, whatever the order events arrived in.
--
-- chat_messages.template: the approved template an outbound send used (its sender says so).
-- chat_messages.compliance_flag: set by the projector on an outbound message sent while the chat
-- was opted out ('opted_out'), or, in a 1:1 chat, with no inbound message in the 24 hours
-- before it and no template ('outside_window'). A function of the chat's events, not of their
-- arrival order: a late event re-judges the outbound messages after it, so a rebuild agrees.
alter table chats add column service_window_closes_at timestamptz;
update chats set service_window_closes_at = last_inbound_at + interval '24 hours' where last_inbound_at is not null;

alter table chat_messages
    add column template text,
    add column compliance_flag text,
    add constraint chat_messages_compliance_flag_check
        check (compliance_flag is null or compliance_flag in ('opted_out', 'outside_window'));
update chat_messages set template = raw_event->>'template' where direction = 'outbound' and raw_event ? 'template';
create index chat_messages_flagged_idx on chat_messages (provider_timestamp) where compliance_flag is not null;

create table chat_consent_changes (
    event_id          text primary key,
    chat_key          text not null,
    state             text not null,
    occurred_at       timestamptz not null,
    message_id        text,
    source_topic      text,
    source_partition  integer,
    source_offset     bigint,
    created_at        timestamptz not null default now(),
    constraint chat_consent_changes_chat_key_fkey foreign key (chat_key) references chats (chat_key) on delete cascade,
    constraint chat_consent_changes_state_check check (state in ('opted_in', 'opted_out'))
);
create index chat_consent_changes_chat_time_idx on chat_consent_changes (chat_key, occurred_at desc);

-- Supabase exposes the public schema over its REST API: no access without a policy.
alter table chat_consent_changes enable row level security;
