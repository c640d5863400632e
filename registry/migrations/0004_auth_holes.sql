-- The first-user bootstrap (`POST /api/v1/user/initialize`) happens once: its transaction inserts
-- the only row this table may hold (id 1) together with the first superuser, so of concurrent
-- calls exactly one commits and every other fails on the primary key.
CREATE TABLE initialization (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    created_ms BIGINT NOT NULL
);
-- A database that already has users is initialized.
INSERT INTO initialization (id, created_ms)
SELECT 1, MIN(created_ms) FROM namespace WHERE kind = 'user' HAVING COUNT(*) > 0;

-- A default permission may delegate only to a robot of its own organization; remove any that
-- named another namespace's robot (they granted that robot access to every new repository).
DELETE FROM prototype WHERE delegate_account_id IN (
    SELECT r.account_id FROM robot r WHERE r.owner_id <> prototype.org_id
);
