/**
 * Which DATABASE_URLs name a PostgreSQL server. The API service reads a SQLAlchemy URL, so its
 * driver-qualified form (`postgresql+psycopg2://`) is accepted and the driver part dropped;
 * everything else in the URL (credentials, host, port, database, `sslmode`) goes to node-postgres.
 */
const POSTGRES_URL = /^(?:postgres|postgresql)(?:\+[a-z0-9_]+)?:\/\//i;

export function isPostgresUrl(databaseUrl: string): boolean {
  return POSTGRES_URL.test(databaseUrl);
}

/** The URL node-postgres understands: `postgresql://…`, whatever driver SQLAlchemy named. */
export function connectionStringOf(databaseUrl: string): string {
  return databaseUrl.replace(POSTGRES_URL, 'postgresql://');
}

/** Query parameters node-postgres reads a secret from (libpq's names). */
const SECRET_PARAMETERS = ['password', 'sslpassword'];

/** The URL without its passwords (in the userinfo or the query), for logs and error messages. */
export function redactedUrl(databaseUrl: string): string {
  try {
    const url = new URL(connectionStringOf(databaseUrl));
    if (url.password) url.password = '***';
    for (const name of [...url.searchParams.keys()]) {
      if (SECRET_PARAMETERS.includes(name.toLowerCase())) url.searchParams.set(name, '***');
    }
    return url.toString();
  } catch {
    return 'postgresql://…';
  }
}
