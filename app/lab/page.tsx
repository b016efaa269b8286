import type { Metadata } from "next";
import { requireUser } from "@/lib/auth/next";
import { notFound } from "next/navigation";
import { LabRunner } from "@/components/lab/lab-runner";
import { Badge } from "@/components/ui/badge";
import { Card, PageTitle } from "@/components/ui/card";
import { consoleEnv } from "@/lib/console/env";
import { farmService } from "@/lib/console/farm-service";
import { isAgentDown } from "@/lib/service/errors";
import { labProblem } from "@/lib/service/lab";

export const metadata: Metadata = { title: "Lab" };

export default async function LabPage() {
  await requireUser();
  const { target } = consoleEnv();
  if (target.kind !== "lab") notFound();
  const service = await farmService();
  const [rows, read] = await Promise.all([
    service.listFarms(),
    service.kernel.lab.status({ name: target.labName }).then(
      (lab) => ({ lab, agentDown: false }),
      (e: unknown) => ({ lab: null, agentDown: isAgentDown(e) }),
    ),
  ]);
  const { lab, agentDown } = read;
  const farms = rows.map((r) => ({ name: r.name, vip: r.vip, ports: r.ports, protocol: r.protocol, mode: r.mode, problem: labProblem(r) }));
  return (
    <>
      <PageTitle
        title="Lab"
        subtitle="Network namespaces on this machine: a client (198.51.100.2), the load balancer holding natfarm's rules, and backends from 203.0.113.10. Nothing leaves the machine."
      />
      <div className="grid gap-5 lg:grid-cols-[minmax(0,1fr)_minmax(0,2fr)]">
        <Card title="Lab status" titleId="lab-status">
          {lab ? (
            <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 p-4 text-sm">
              <dt className="text-muted">Name</dt>
              <dd className="font-mono">{lab.name}</dd>
              <dt className="text-muted">Load balancer</dt>
              <dd className="font-mono">{lab.lbNs}</dd>
              <dt className="text-muted">Client</dt>
              <dd className="font-mono">{lab.clientIp}</dd>
              <dt className="text-muted">Backends</dt>
              <dd>
                <ul className="space-y-1">
                  {lab.backends.map((b) => (
                    <li key={b.name} className="flex items-center gap-2 font-mono">
                      {b.name} {b.ip}
                      <Badge tone={b.running ? "ok" : "bad"}>{b.running ? "serving" : "no server"}</Badge>
                    </li>
                  ))}
                </ul>
              </dd>
              <dt className="text-muted">Ports</dt>
              <dd className="font-mono">{lab.ports.join(", ")}</dd>
              <dt className="text-muted">VIPs</dt>
              <dd className="font-mono">{lab.vips.length ? lab.vips.join(", ") : "none yet"}</dd>
            </dl>
          ) : agentDown ? (
            <p className="p-4 text-sm text-warn" role="status">
              The lab cannot be read: the natfarm agent is not running.
            </p>
          ) : (
            <p className="p-4 text-sm text-warn" role="status">
              The lab is not up. It is brought up at start and by the first apply or test run.
            </p>
          )}
        </Card>
        <Card title="Test traffic" titleId="lab-run">
          <LabRunner farms={farms} ports={lab?.ports ?? []} />
        </Card>
      </div>
    </>
  );
}
