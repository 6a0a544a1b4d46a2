// Lint rules that protect what the compiler cannot: no focused tests, node: imports,
// no process.exit outside the two entry points, and the FFI boundary.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'describe', property: 'only', message: 'a focused test skips the rest of the suite' },
        { object: 'it', property: 'only', message: 'a focused test skips the rest of the suite' },
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'koffi', message: 'only src/libvirt/, src/crypt/ and src/peercred/ may import koffi (one module per C library)' },
            { name: 'fs', message: "use 'node:fs'" },
            { name: 'path', message: "use 'node:path'" },
            { name: 'crypto', message: "use 'node:crypto'" },
            { name: 'os', message: "use 'node:os'" },
            { name: 'child_process', message: 'use execa' },
            { name: 'node:child_process', message: 'use execa' },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/libvirt/**/*.ts', 'src/crypt/**/*.ts', 'src/peercred/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='process'][callee.property.name='exit']",
          message: 'library code never exits the process; throw an AgentError',
        },
      ],
    },
  },
);
