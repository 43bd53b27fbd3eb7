"""extract stage: PDFs on wa.media -> text on wa.documents. Text layers are read locally (pypdf);
only pages without one are rendered (pypdfium2) and read by a vision model."""
