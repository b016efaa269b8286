import type { Metadata } from "next";
import QRCode from "qrcode";
import { PasswordForm, RevokeOwnToken, TokenForm, TotpConfirm, TotpDisable, TotpStart } from "@/components/auth/account-forms";
import { TokenTable } from "@/components/auth/token-table";
import { Badge } from "@/components/ui/badge";
import { Card, PageTitle } from "@/components/ui/card";
import { UtcTime } from "@/components/ui/log-table";
import { requireUser } from "@/lib/auth/next";
import { ROLES } from "@/lib/auth/roles";
import { listTokens } from "@/lib/auth/tokens";
import { pendingEnrolment } from "@/lib/auth/totp";
import { consoleDb } from "@/lib/console/db";

export const metadata: Metadata = { title: "Account" };

/** Every signed-in user's own account: password, API tokens, the second factor. */
export default async function AccountPage() {
  const user = await requireUser();
  const db = await consoleDb();
  const [row, tokens, pending] = await Promise.all([db.user.findUnique({ where: { id: user.id } }), listTokens(db, user.name), pendingEnrolment(db, user.id)]);
  // The QR code is made here, as SVG markup: nothing is fetched from elsewhere, and the secret never leaves this answer.
  const qr = pending ? await QRCode.toString(pending.uri, { type: "svg", margin: 1, errorCorrectionLevel: "M" }) : null;
  const roles = ROLES.slice(0, ROLES.indexOf(user.role) + 1);
  return (
    <>
      <PageTitle title="Account" subtitle={`Signed in as ${user.name} (${user.role}).`} />
      <div className="grid gap-5">
        <Card title="Password" titleId="password-title">
          <div className="p-4">
            <PasswordForm />
          </div>
        </Card>

        <Card
          title="Two-factor login"
          titleId="totp-title"
          actions={row?.totpSecret ? <Badge tone="ok">on</Badge> : pending ? <Badge tone="warn">not confirmed</Badge> : <Badge>off</Badge>}
        >
          <div className="space-y-3 p-4 text-sm">
            {row?.totpSecret ? (
              <>
                <p>
                  On since {row.totpEnabledAt ? <UtcTime at={row.totpEnabledAt} /> : "—"}: a login asks for a code from your authenticator app after the password. Lost the device? An administrator runs{" "}
                  <code className="font-mono text-xs">natfarm user totp-reset {user.name}</code>.
                </p>
                <TotpDisable />
              </>
            ) : pending && qr ? (
              <>
                <p>Scan this with an authenticator app (or type the secret), then enter the code it shows. Two-factor login is not on until then.</p>
                <div className="flex flex-wrap items-start gap-5">
                  <div role="img" aria-label="QR code of the two-factor secret" className="h-44 w-44 rounded-md bg-white p-1 [&_svg]:h-full [&_svg]:w-full" dangerouslySetInnerHTML={{ __html: qr }} />
                  <div className="space-y-1">
                    <p className="text-xs text-muted">Secret (base32, SHA-1, 6 digits, 30 s)</p>
                    <code data-testid="totp-secret" className="block font-mono text-sm break-all">
                      {pending.secret}
                    </code>
                    <p className="text-xs text-muted">Shown until you confirm; never again afterwards.</p>
                  </div>
                </div>
                <TotpConfirm />
              </>
            ) : (
              <>
                <p>Off: the password alone logs you in. With it on, a login also asks for a 6-digit code from an app such as FreeOTP, Aegis or Google Authenticator.</p>
                <TotpStart />
              </>
            )}
          </div>
        </Card>

        <Card title="API tokens" titleId="tokens-title" actions={<span className="text-xs text-muted">Authorization: Bearer … on /api routes</span>}>
          <div className="space-y-4 p-4">
            <TokenForm roles={[...roles]} />
            <TokenTable tokens={tokens} label="Your API tokens" empty="You have no API tokens." revoke={(t) => <RevokeOwnToken id={t.id} name={t.name} />} />
          </div>
        </Card>
      </div>
    </>
  );
}
