import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import type { TrustedNetworks } from './trusted-networks.js';
import type { ApprovalRecord, RequestRecord } from './types.js';

export type BindTo = 'client-ip' | 'user';

/** Why a login that needs two-factor skips the tap. */
export type Exemption = 'trusted-network' | 'standing-approval';

/** The scope of a standing approval: apart from the tap approvals, so a tap never overwrites it. */
function standingScope(clientIp: string): string {
  return `standing:${clientIp}`;
}

/** The approval windows: what one tap lets in, for how long. */
export class ApprovalService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly settings: { ttlMs: number; bindTo: BindTo; trustedNetworks?: TrustedNetworks },
  ) {}

  /** daemonOtp.trustedNetworks as configured (for listing). */
  get trustedNetworks(): readonly string[] {
    return this.settings.trustedNetworks?.cidrs ?? [];
  }

  /**
   * Whether a login from clientIp skips the tap: from a trusted network, or with a standing approval
   * for exactly this address (whatever bindTo says). Asked only after a correct password.
   */
  async exemption(user: string, clientIp: string): Promise<Exemption | null> {
    if (this.settings.trustedNetworks?.has(clientIp)) return 'trusted-network';
    if (await this.store.getApproval(user, standingScope(clientIp), this.clock.now())) return 'standing-approval';
    return null;
  }

  /** The admin's standing approval for a device that can never tap (a scanner): clientIp, for ttlMs. */
  async grantStanding(user: string, clientIp: string, ttlMs: number): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const approval: ApprovalRecord = { user, scope: standingScope(clientIp), clientIp, approvedAt: now, expiresAt: now + ttlMs, standing: true };
    await this.store.putApproval(approval, now);
    this.logger.info({ event: 'approval.granted', user, clientIp, standing: true, expiresAt: new Date(approval.expiresAt).toISOString() }, 'standing approval granted');
    return approval;
  }

  /** The scope an approval for a login from clientIp is stored (and looked up) under. */
  scopeFor(clientIp: string): string {
    return this.settings.bindTo === 'user' ? '*' : clientIp;
  }

  find(user: string, clientIp: string): Promise<ApprovalRecord | null> {
    return this.store.getApproval(user, this.scopeFor(clientIp), this.clock.now());
  }

  /** True when an unexpired approval of the user was granted to a login from this very IP (with
   * bindTo: user too, where the one approval covers every IP but remembers where it was given),
   * or the admin granted a standing one for it. */
  async grantedTo(user: string, clientIp: string): Promise<boolean> {
    const [approval, standing] = await Promise.all([this.find(user, clientIp), this.store.getApproval(user, standingScope(clientIp), this.clock.now())]);
    return approval?.clientIp === clientIp || standing !== null;
  }

  /** Opens the window for the request's user (and client IP). */
  async grant(request: RequestRecord): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const approval: ApprovalRecord = {
      user: request.user,
      scope: this.scopeFor(request.clientIp),
      clientIp: request.clientIp,
      approvedAt: now,
      expiresAt: now + this.settings.ttlMs,
      requestId: request.id,
      protocol: request.protocol,
      ...(request.clientName ? { clientName: request.clientName } : {}),
    };
    await this.store.putApproval(approval, now);
    this.logger.info(
      { event: 'approval.created', user: approval.user, clientIp: approval.clientIp, expiresAt: new Date(approval.expiresAt).toISOString() },
      'approval created',
    );
    return approval;
  }

  list(user: string | null): Promise<ApprovalRecord[]> {
    return this.store.listApprovals(user, this.clock.now());
  }

  async revoke(user: string, clientIp?: string): Promise<number> {
    const n = await this.store.deleteApprovals(user, clientIp);
    this.logger.info({ event: 'approval.revoked', user, clientIp, count: n }, 'approvals revoked');
    return n;
  }
}
