-- Seed for every target. Placeholders are expanded by the harness into complete,
-- quoted SQL string literals, so they are written without quotes here.

INSERT INTO users (username, password_hash, is_admin, must_change_password, password_changed_at)
VALUES ('admin', {{admin_password|werkzeug}}, 1, 1, NULL);

INSERT INTO settings (key, value) VALUES
    ('secret_key', {{secret_key|json}}),
    ('deployment_target', {{target|json}}),
    ('site_name', '"Harness example app"');

INSERT INTO api_clients (client_id, alias, token_sha256, description, is_primary)
VALUES ('primary', {{client_alias.primary}}, {{client_token.primary|sha256}}, 'Primary API client', 1);

-- Production mail goes through the host's relay with STARTTLS; MAIL_* env vars override.
INSERT INTO email_config (id, host, port, username, password, use_tls, from_address, notify_to)
VALUES (1, 'localhost', 587, NULL, NULL, 1, 'noreply@app.example.org', 'admin@app.example.org');
