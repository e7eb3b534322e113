import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
  {
    // Probes run by hand beside the benchmark; preload.cjs is loaded into a child with --require.
    files: ['bench/probes/**'],
    languageOptions: { globals: { process: 'readonly', require: 'readonly', __dirname: 'readonly', global: 'readonly', setTimeout: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The portal pages' script runs in the browser.
    files: ['src/portal/pages/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { document: 'readonly', fetch: 'readonly', location: 'readonly', setTimeout: 'readonly', SimpleWebAuthnBrowser: 'readonly' } },
  },
  {
    // The web authenticator app: classic browser scripts (the service worker loads them with importScripts).
    files: ['src/portal/app/static/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        [
          'self', 'document', 'location', 'history', 'navigator', 'fetch', 'indexedDB', 'setTimeout', 'clearTimeout',
          'setInterval', 'clearInterval', 'URL', 'URLSearchParams', 'AbortController', 'TextDecoderStream', 'CSS', 'atob',
          'Notification', 'importScripts',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
);
