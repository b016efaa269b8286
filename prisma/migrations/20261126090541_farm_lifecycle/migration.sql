-- CreateTable
CREATE TABLE "HealthEvent" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "farm" TEXT NOT NULL,
    "backend" TEXT NOT NULL,
    "mark" INTEGER NOT NULL,
    "from" TEXT NOT NULL,
    "to" TEXT NOT NULL,
    "detail" TEXT NOT NULL
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Backend" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "farmId" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,
    "ip" TEXT NOT NULL,
    "port" INTEGER,
    "weight" INTEGER NOT NULL DEFAULT 1,
    "mark" INTEGER NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'up',
    "priority" INTEGER NOT NULL DEFAULT 1,
    "healthDetail" TEXT,
    "healthAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Backend_farmId_fkey" FOREIGN KEY ("farmId") REFERENCES "Farm" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_Backend" ("createdAt", "farmId", "id", "ip", "mark", "port", "position", "state", "updatedAt", "weight") SELECT "createdAt", "farmId", "id", "ip", "mark", "port", "position", "state", "updatedAt", "weight" FROM "Backend";
DROP TABLE "Backend";
ALTER TABLE "new_Backend" RENAME TO "Backend";
CREATE UNIQUE INDEX "Backend_mark_key" ON "Backend"("mark");
CREATE UNIQUE INDEX "Backend_farmId_position_key" ON "Backend"("farmId", "position");
CREATE UNIQUE INDEX "Backend_farmId_ip_port_key" ON "Backend"("farmId", "ip", "port");
CREATE TABLE "new_Farm" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "vip" TEXT NOT NULL,
    "ports" TEXT NOT NULL,
    "protocol" TEXT NOT NULL,
    "mode" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'up',
    "scheduler" TEXT NOT NULL DEFAULT 'weight',
    "persistence" TEXT NOT NULL DEFAULT 'none',
    "persistenceTtl" INTEGER NOT NULL DEFAULT 120,
    "healthcheck" TEXT,
    "applyState" TEXT NOT NULL DEFAULT 'pending',
    "applyError" TEXT,
    "appliedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Farm" ("appliedAt", "applyError", "applyState", "createdAt", "id", "mode", "name", "ports", "protocol", "scheduler", "status", "updatedAt", "vip") SELECT "appliedAt", "applyError", "applyState", "createdAt", "id", "mode", "name", "ports", "protocol", "scheduler", "status", "updatedAt", "vip" FROM "Farm";
DROP TABLE "Farm";
ALTER TABLE "new_Farm" RENAME TO "Farm";
CREATE UNIQUE INDEX "Farm_name_key" ON "Farm"("name");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE INDEX "HealthEvent_at_idx" ON "HealthEvent"("at");
