-- Demo accounts (--seed-demo). Their hash '!' matches no password, so they cannot log in
-- until an admin sets a password; they exist to show listings with more than one user.
INSERT INTO users (username, password_hash, is_admin, must_change_password, password_changed_at) VALUES
    ('demo-editor', '!', 0, 1, NULL),
    ('demo-viewer', '!', 0, 1, NULL);
