/**
 * The module `npm run build` generates from ./schemas.ts with Ajv's standalone code
 * (tools/compile-schemas.mjs writes dist/src/rpc/validators.js): one validator per method.
 */
import type { ValidateFunction } from 'ajv';
import type { Method } from './actions.js';

export declare const validators: Readonly<Record<Method, ValidateFunction>>;
/** JSON of the schemas they were compiled from, so a build older than its schemas is refused. */
export declare const compiledFrom: string;
