"""media stage: wa.messages events with media -> files in storage and wa.media events.

``logic`` holds the pure rules (allow-list, content-addressed paths, events); ``providers``
downloads, ``storage`` stores; ``agent`` wires them per record; ``main`` is the process.
"""
