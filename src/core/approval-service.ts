import type { Logger } from '../log/logger.js';
import type { Store } from '../stores/store.js';
import type { Clock } from './clock.js';
import type { ApprovalRecord, RequestRecord } from './types.js';

export type BindTo = 'client-ip' | 'user';

/** The approval windows: what one tap lets in, for how long. */
export class ApprovalService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly settings: { ttlMs: number; bindTo: BindTo },
  ) {}

  /** The scope an approval for a login from clientIp is stored (and looked up) under. */
  scopeFor(clientIp: string): string {
    return this.settings.bindTo === 'user' ? '*' : clientIp;
  }

  find(user: string, clientIp: string): Promise<ApprovalRecord | null> {
    return this.store.getApproval(user, this.scopeFor(clientIp), this.clock.now());
  }

  /** True when an unexpired approval of the user was granted to a login from this very IP (with
   * bindTo: user too, where the one approval covers every IP but remembers where it was given). */
  async grantedTo(user: string, clientIp: string): Promise<boolean> {
    const approval = await this.find(user, clientIp);
    return approval?.clientIp === clientIp;
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
