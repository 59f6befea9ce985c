// The signed-in staff member or supervisor, kept in sessionStorage for page reloads.
// `expires_at` is what POST /api/v1/auth/login answered: seconds since the epoch.

/** Remember `auth` ({token, role, expires_at, ...}) under `key`. */
export function saveAuth(key, auth) {
  sessionStorage.setItem(key, JSON.stringify(auth));
}

export function clearAuth(key) {
  sessionStorage.removeItem(key);
}

/** The remembered sign-in if it is for `role` and has not expired, else null. */
export function restoreAuth(key, role) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(key) || "null");
    if (!saved || !saved.token || (role && saved.role !== role)) return null;
    const expiresMs =
      typeof saved.expires_at === "number" ? saved.expires_at * 1000 : Date.parse(saved.expires_at);
    if (expiresMs <= Date.now()) {
      clearAuth(key);
      return null;
    }
    return saved;
  } catch {
    clearAuth(key);
    return null;
  }
}
