-- The local target sends mail to the Mailpit-compatible catcher of the stack: plain SMTP, no TLS.
UPDATE email_config
SET host = 'mailpit', port = 1025, username = NULL, password = NULL, use_tls = 0,
    from_address = 'noreply@app.localtest.me', notify_to = 'admin@app.localtest.me'
WHERE id = 1;
