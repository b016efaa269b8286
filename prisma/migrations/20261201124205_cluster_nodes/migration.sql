-- CreateTable
CREATE TABLE "FarmRevision" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "revision" INTEGER NOT NULL DEFAULT 0
);

-- CreateTable
CREATE TABLE "ClusterNode" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "cluster" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "appliedRevision" INTEGER,
    "appliedVersion" TEXT,
    "appliedAt" DATETIME,
    "applyError" TEXT,
    "lastSeen" DATETIME NOT NULL
);

-- The revision every node polls (lib/cluster/node-sync.ts), bumped by the database itself so
-- that no writer (console, API, `natfarm import`, the checker, raw SQL) can forget it. Only the
-- columns that make up the desired state count: apply bookkeeping (applyState, appliedAt) and
-- probe details (healthDetail, healthAt) would otherwise wake every node for nothing.
INSERT INTO "FarmRevision" ("id", "revision") VALUES (1, 0);

CREATE TRIGGER "Farm_revision_insert" AFTER INSERT ON "Farm"
BEGIN UPDATE "FarmRevision" SET "revision" = "revision" + 1 WHERE "id" = 1; END;

CREATE TRIGGER "Farm_revision_delete" AFTER DELETE ON "Farm"
BEGIN UPDATE "FarmRevision" SET "revision" = "revision" + 1 WHERE "id" = 1; END;

CREATE TRIGGER "Farm_revision_update" AFTER UPDATE OF "name", "vip", "ports", "protocol", "mode", "status", "scheduler", "persistence", "persistenceTtl", "healthcheck" ON "Farm"
BEGIN UPDATE "FarmRevision" SET "revision" = "revision" + 1 WHERE "id" = 1; END;

CREATE TRIGGER "Backend_revision_insert" AFTER INSERT ON "Backend"
BEGIN UPDATE "FarmRevision" SET "revision" = "revision" + 1 WHERE "id" = 1; END;

CREATE TRIGGER "Backend_revision_delete" AFTER DELETE ON "Backend"
BEGIN UPDATE "FarmRevision" SET "revision" = "revision" + 1 WHERE "id" = 1; END;

CREATE TRIGGER "Backend_revision_update" AFTER UPDATE OF "farmId", "position", "ip", "port", "weight", "mark", "state", "priority" ON "Backend"
BEGIN UPDATE "FarmRevision" SET "revision" = "revision" + 1 WHERE "id" = 1; END;
