-- CreateTable
CREATE TABLE "TrafficSample" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "farm" TEXT NOT NULL,
    "at" DATETIME NOT NULL,
    "step" INTEGER NOT NULL,
    "connections" REAL NOT NULL,
    "bytes" REAL NOT NULL
);

-- CreateTable
CREATE TABLE "TrafficState" (
    "farm" TEXT NOT NULL PRIMARY KEY,
    "at" DATETIME NOT NULL,
    "state" TEXT NOT NULL
);

-- CreateIndex
CREATE INDEX "TrafficSample_farm_step_at_idx" ON "TrafficSample"("farm", "step", "at");

-- CreateIndex
CREATE INDEX "TrafficSample_step_at_idx" ON "TrafficSample"("step", "at");
