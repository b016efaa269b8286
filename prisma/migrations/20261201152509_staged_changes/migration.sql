-- CreateTable
CREATE TABLE "StagedState" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "enabled" BOOLEAN NOT NULL DEFAULT false,
    "appliedRevision" INTEGER,
    "applied" TEXT,
    "savepointUntil" DATETIME,
    "savepointConfig" TEXT,
    "savepointRevision" INTEGER,
    "savepointOutcome" TEXT,
    "updatedAt" DATETIME NOT NULL
);
