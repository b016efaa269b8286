-- CreateTable
CREATE TABLE "StagedState" (
    "id" SERIAL NOT NULL,
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
