"""The engine on another machine: a WebSocket server in front of one GenerationSession, and a client with its interface.

    magi-studio serve --model studio-mini                     # on the GPU machine (magi_engine.remote.server)
    session = RemoteSession.connect("ws://gpu-box:8765", token_file="token")   # on the laptop
    for event in session.generate(request, cancel): ...        # the engine's own typed events

`protocol` is the wire format (versioned JSON control messages, binary messages for bulk data, never
pickle); `server` runs one generation at a time per model and keeps finished chunks for a client that
drops and comes back; `client` is the RemoteSession; `token` makes and reads the bearer token file.
Nothing here imports Qt or the studio; importing `protocol`, `token` or `client` costs no torch.
"""
