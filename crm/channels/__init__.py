"""Messages to customers and owners (e-mail, SMS): one channel layer, pluggable backends.

The whole API (docs/channels.md):

* `services.message_queue(channel=..., to=..., body=..., purpose=..., key=...)` inside
  the caller's transaction: stores an `OutboundMessage` (queued) and schedules its
  delivery as an at-most-once scheduled action;
* `registry.on_outcome(purpose, callback)` in an app's `ready()`: `callback(message)`
  runs in the delivery's transaction when a message of that purpose is sent or failed;
* `settings.KEHU_SMS_BACKEND` picks the SMS backend (`backends.RecordingSmsBackend` by
  default, `backends.HttpGatewaySmsBackend` as the example gateway); e-mail goes through
  Django's mail backend (EMAIL_BACKEND and the SMTP settings).
"""
