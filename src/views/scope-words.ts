/**
 * What a scope lets the service do, in words a mailbox owner understands (the invitation and
 * confirm pages). Keyed by the scope's last path segment, lowercased; anything not listed is shown
 * as the scope itself. Sign-in scopes (`openid`, `profile`, `email`) say nothing about the mailbox.
 */
const WORDS: Record<string, string> = {
  'imap.accessasuser.all': 'read and manage your mail over IMAP',
  'pop.accessasuser.all': 'read your mail over POP',
  'smtp.send': 'send mail as you over SMTP',
  'mail.read': 'read your mail',
  'mail.readbasic': 'read your mail (without bodies or attachments)',
  'mail.readwrite': 'read, move and delete your mail',
  'mail.send': 'send mail as you',
  'mailboxsettings.read': 'read your mailbox settings',
  'mailboxsettings.readwrite': 'read and change your mailbox settings',
  'calendars.read': 'read your calendars',
  'calendars.readwrite': 'read and change your calendars',
  'contacts.read': 'read your contacts',
  'contacts.readwrite': 'read and change your contacts',
  'files.read': 'read your files in OneDrive',
  'files.read.all': 'read all files you can open in OneDrive and SharePoint',
  'files.readwrite': 'read and write your files in OneDrive',
  'files.readwrite.all': 'read and write all files you can open in OneDrive and SharePoint',
  'sites.read.all': 'read SharePoint sites you can open',
  'sites.readwrite.all': 'read and write SharePoint sites you can open',
  'allsites.read': 'read SharePoint sites you can open',
  'allsites.write': 'read and write SharePoint sites you can open',
  'allsites.manage': 'read, write and manage SharePoint sites you can open',
  'allsites.fullcontrol': 'fully control SharePoint sites you can open',
  'bookings.read.all': 'read your Bookings calendars',
  'bookings.readwrite.all': 'read and change your Bookings calendars',
  'bookings.manage.all': 'manage your Bookings businesses',
  'user.read': 'read your profile (name, e-mail address)',
  offline_access: 'keep this access until you withdraw it, also while you are signed out',
};
const SIGN_IN = new Set(['openid', 'profile', 'email']);

/** The scopes in words, each once, in the order given; the broker-added offline access last. */
export function scopesInWords(scopes: readonly string[]): string[] {
  const out: string[] = [];
  for (const scope of scopes) {
    const key = (scope.split('/').pop() ?? scope).toLowerCase();
    if (SIGN_IN.has(key) || key === 'offline_access') continue;
    const words = WORDS[key] ?? scope;
    if (!out.includes(words)) out.push(words);
  }
  out.push(WORDS.offline_access!);
  return out;
}
