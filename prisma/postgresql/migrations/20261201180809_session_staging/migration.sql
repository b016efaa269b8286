-- Hand-written (no PostgreSQL server at hand): what Prisma's engine writes for this column, and the SQLite migration's data step.
-- AlterTable
ALTER TABLE "Session" ADD COLUMN "stageChanges" BOOLEAN NOT NULL DEFAULT false;

-- Staged changes are tracked (StagedState.applied) only while some staging is on or changes are pending:
-- a row left by staging turned off before this migration tracked nothing any more.
UPDATE "StagedState" SET "applied" = NULL, "appliedRevision" = NULL WHERE "enabled" = false AND "savepointUntil" IS NULL;
