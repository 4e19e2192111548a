import { describe, expect, it } from 'vitest';
import type { InvitationView } from '../../src/lib/invitations/invitation-service.js';
import { PENDING_SHOWN, pendingInvitations } from '../../src/views/status-invitations.js';

const forms = { action: '/api/status', antiForgery: 'af' };
const view = (i: number): InvitationView => ({
  id: `inv${String(i).padStart(19, '0')}`,
  connection: `desk-${i}`,
  state: 'pending',
  createdAt: '2026-12-01T00:00:00.000Z',
  expiresAt: new Date(Date.UTC(2026, 11, 8) + i * 60_000).toISOString(),
  replace: false,
  createdBy: { name: 'ann <admin>' },
});

describe('the status page pending invitations', () => {
  it('shows the 50 expiring soonest of many, counting them all, each with its revoke form', () => {
    const html = pendingInvitations(
      Array.from({ length: 120 }, (_, i) => view(i)),
      forms,
    );
    expect(html).toContain('Pending invitations (120)');
    expect(html.match(/<tr data-invitation=/g)).toHaveLength(PENDING_SHOWN);
    expect(html).toContain('data-invitation="inv0000000000000000049"');
    expect(html).not.toContain('desk-50<');
    expect(html).toContain(`The ${PENDING_SHOWN} expiring soonest are shown`);
    expect(html).toContain('ann &#60;admin&#62;');
  });

  it('shows every one of a few, with no note', () => {
    const html = pendingInvitations([view(1), view(2)], forms);
    expect(html.match(/<tr data-invitation=/g)).toHaveLength(2);
    expect(html).not.toContain('expiring soonest');
    expect(pendingInvitations([], forms)).toBe('');
  });
});
