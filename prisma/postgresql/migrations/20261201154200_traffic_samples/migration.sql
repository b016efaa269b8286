-- CreateTable
CREATE TABLE "TrafficSample" (
    "id" SERIAL NOT NULL,
    "farm" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "step" INTEGER NOT NULL,
    "connections" DOUBLE PRECISION NOT NULL,
    "bytes" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "TrafficSample_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TrafficState" (
    "farm" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "state" TEXT NOT NULL,

    CONSTRAINT "TrafficState_pkey" PRIMARY KEY ("farm")
);

-- CreateIndex
CREATE INDEX "TrafficSample_step_at_idx" ON "TrafficSample"("step", "at");

-- CreateIndex
CREATE INDEX "TrafficSample_farm_step_at_idx" ON "TrafficSample"("farm", "step", "at");
