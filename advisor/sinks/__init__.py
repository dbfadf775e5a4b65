"""Where alerts go: console, Slack, a JSON Lines file, a generic webhook.

Each sink implements ``advisor.sinks.base.Sink`` (one method, ``send``) and builds its
payload with a pure function, separate from the transport. ``Dispatcher`` fans alerts
out to the sinks through a durable ``Outbox``, one worker thread per sink.

Submodules are imported on use, so that importing this package stays cheap.
"""
