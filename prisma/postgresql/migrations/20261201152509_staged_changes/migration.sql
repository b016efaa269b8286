-- Hand-edited like FarmRevision's: the one row has id 1, no sequence (the derivation reads SQLite's rowid alias as SERIAL).
-- CreateTable
CREATE TABLE "StagedState" (
    "id" INTEGER NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT false,
    "appliedRevision" INTEGER,
    "applied" TEXT,
    "savepointUntil" TIMESTAMP(3),
    "savepointConfig" TEXT,
    "savepointRevision" INTEGER,
    "savepointOutcome" TEXT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "StagedState_pkey" PRIMARY KEY ("id")
);
