-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "ApplyLog" (
    "id" SERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "target" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "farms" TEXT NOT NULL,
    "result" TEXT NOT NULL,
    "error" TEXT,
    "durationMs" INTEGER NOT NULL,
    "summary" TEXT,

    CONSTRAINT "ApplyLog_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Backend" (
    "id" SERIAL NOT NULL,
    "farmId" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,
    "ip" TEXT NOT NULL,
    "port" INTEGER,
    "weight" INTEGER NOT NULL DEFAULT 1,
    "mark" INTEGER NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'up',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Backend_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Farm" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "vip" TEXT NOT NULL,
    "ports" TEXT NOT NULL,
    "protocol" TEXT NOT NULL,
    "mode" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'up',
    "scheduler" TEXT NOT NULL DEFAULT 'weight',
    "applyState" TEXT NOT NULL DEFAULT 'pending',
    "applyError" TEXT,
    "appliedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Farm_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ApplyLog_at_idx" ON "ApplyLog"("at");

-- CreateIndex
CREATE UNIQUE INDEX "Backend_mark_key" ON "Backend"("mark");

-- CreateIndex
CREATE UNIQUE INDEX "Backend_farmId_ip_port_key" ON "Backend"("farmId", "ip", "port");

-- CreateIndex
CREATE UNIQUE INDEX "Backend_farmId_position_key" ON "Backend"("farmId", "position");

-- CreateIndex
CREATE UNIQUE INDEX "Farm_name_key" ON "Farm"("name");

-- AddForeignKey
ALTER TABLE "Backend" ADD CONSTRAINT "Backend_farmId_fkey" FOREIGN KEY ("farmId") REFERENCES "Farm"("id") ON DELETE CASCADE ON UPDATE CASCADE;
