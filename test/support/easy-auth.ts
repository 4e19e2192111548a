/** The Entra object id of the person the Easy Auth tests sign in as. */
export const ADA = '44444444-4444-4444-8444-444444444444';

/**
 * `X-MS-CLIENT-PRINCIPAL` as App Service's authentication module sets it: Ada (or `name`) with her
 * object id, `tenant`'s id (none when null) and `roles`.
 */
export function clientPrincipal(tenant: string | null, roles: string[], name = 'ada@contoso.com'): string {
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
      role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
      claims: [
        { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', val: name },
        { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: ADA },
        ...(tenant === null
          ? []
          : [{ typ: 'http://schemas.microsoft.com/identity/claims/tenantid', val: tenant }]),
        ...roles.map((val) => ({ typ: 'roles', val })),
      ],
    }),
  ).toString('base64');
}
