import { defineConfig } from 'drizzle-kit';

// `npx drizzle-kit generate` writes a new migration to drizzle/ from src/store/schema.ts.
// Migrations are applied by openStore (src/store/db.ts); never edit a committed one.
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/store/schema.ts',
  out: './drizzle',
  strict: true,
  verbose: true,
});
