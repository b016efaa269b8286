-- CreateTable
CREATE TABLE "FarmRevision" (
    "id" INTEGER NOT NULL,
    "revision" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "FarmRevision_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ClusterNode" (
    "name" TEXT NOT NULL,
    "cluster" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "appliedRevision" INTEGER,
    "appliedVersion" TEXT,
    "appliedAt" TIMESTAMP(3),
    "applyError" TEXT,
    "lastSeen" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ClusterNode_pkey" PRIMARY KEY ("name")
);

-- The revision every node polls (lib/cluster/node-sync.ts), bumped by the database itself so
-- that no writer (console, API, `natfarm import`, the checker, raw SQL) can forget it. Only the
-- columns that make up the desired state count: apply bookkeeping (applyState, appliedAt) and
-- probe details (healthDetail, healthAt) would otherwise wake every node for nothing.
-- Statement-level here: one bump per statement, not one per row of a 5,000-farm import.
INSERT INTO "FarmRevision" ("id", "revision") VALUES (1, 0);

CREATE FUNCTION "natfarm_bump_farm_revision"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "FarmRevision" SET "revision" = "revision" + 1 WHERE "id" = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER "Farm_revision_insert_delete" AFTER INSERT OR DELETE ON "Farm"
FOR EACH STATEMENT EXECUTE FUNCTION "natfarm_bump_farm_revision"();

CREATE TRIGGER "Farm_revision_update" AFTER UPDATE OF "name", "vip", "ports", "protocol", "mode", "status", "scheduler", "persistence", "persistenceTtl", "healthcheck" ON "Farm"
FOR EACH STATEMENT EXECUTE FUNCTION "natfarm_bump_farm_revision"();

CREATE TRIGGER "Backend_revision_insert_delete" AFTER INSERT OR DELETE ON "Backend"
FOR EACH STATEMENT EXECUTE FUNCTION "natfarm_bump_farm_revision"();

CREATE TRIGGER "Backend_revision_update" AFTER UPDATE OF "farmId", "position", "ip", "port", "weight", "mark", "state", "priority" ON "Backend"
FOR EACH STATEMENT EXECUTE FUNCTION "natfarm_bump_farm_revision"();
