-- CreateTable
CREATE TABLE "ConfigRevision" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "author" TEXT NOT NULL,
    "via" TEXT NOT NULL,
    "summary" TEXT NOT NULL,
    "changes" TEXT NOT NULL,
    "snapshot" TEXT
);

-- CreateIndex
CREATE INDEX "ConfigRevision_at_idx" ON "ConfigRevision"("at");
