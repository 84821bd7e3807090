export const ROLES = ["admin", "operator", "auditor"] as const;
export type Role = (typeof ROLES)[number];

/** Each role may do what the roles below it may: auditors read and export, operators also change the register, admins also manage operator tokens. */
const ROLE_RANK: Record<Role, number> = { auditor: 1, operator: 2, admin: 3 };

export function roleAllows(held: Role, required: Role): boolean {
  return ROLE_RANK[held] >= ROLE_RANK[required];
}
