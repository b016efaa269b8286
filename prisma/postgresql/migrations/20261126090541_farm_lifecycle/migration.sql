-- AlterTable
ALTER TABLE "Backend" ADD COLUMN     "healthAt" TIMESTAMP(3),
ADD COLUMN     "healthDetail" TEXT,
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "Farm" ADD COLUMN     "healthcheck" TEXT,
ADD COLUMN     "persistence" TEXT NOT NULL DEFAULT 'none',
ADD COLUMN     "persistenceTtl" INTEGER NOT NULL DEFAULT 120;

-- CreateTable
CREATE TABLE "HealthEvent" (
    "id" SERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "farm" TEXT NOT NULL,
    "backend" TEXT NOT NULL,
    "mark" INTEGER NOT NULL,
    "from" TEXT NOT NULL,
    "to" TEXT NOT NULL,
    "detail" TEXT NOT NULL,

    CONSTRAINT "HealthEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "HealthEvent_at_idx" ON "HealthEvent"("at");
