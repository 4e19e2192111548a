/**
 * `@azure/functions` is CommonJS, and Node's ESM loader cannot see its class exports by name
 * (vitest can, so only a real `node` run shows it): take them from the default export.
 */
import azureFunctions from '@azure/functions';

export const { HttpRequest, HttpResponse, InvocationContext } = azureFunctions;
export type HttpRequest = InstanceType<typeof azureFunctions.HttpRequest>;
export type HttpResponse = InstanceType<typeof azureFunctions.HttpResponse>;
export type InvocationContext = InstanceType<typeof azureFunctions.InvocationContext>;
