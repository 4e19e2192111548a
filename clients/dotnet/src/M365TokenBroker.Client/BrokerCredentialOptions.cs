using Azure.Core;

namespace M365TokenBroker.Client;

/// <summary>How <see cref="BrokerTokenCredential"/> reaches the broker (the Node client's options, .NET-cased).</summary>
public sealed class BrokerCredentialOptions
{
    /// <summary>The broker's base URL, e.g. <c>https://contoso-broker.azurewebsites.net</c> (a trailing <c>/api</c> is fine).</summary>
    public required Uri Url { get; init; }

    /// <summary>The connection id (<c>/api/token?connection=</c>).</summary>
    public required string Connection { get; init; }

    /// <summary>The function key, sent as <c>x-functions-key</c> (<c>CALLER_AUTH=key</c>).</summary>
    public string? FunctionKey { get; init; }

    /// <summary>A credential for the broker's API (<c>CALLER_AUTH=entra</c>), e.g. <c>ManagedIdentityCredential</c>; sent as Bearer.</summary>
    public TokenCredential? Credential { get; init; }

    /// <summary>What <see cref="Credential"/> is asked for, e.g. <c>api://broker/.default</c>; required with it.</summary>
    public string? ApiScope { get; init; }

    public BrokerRetryOptions Retry { get; init; } = new();
}

/// <summary>Bounds of the wait for <c>upstream_unavailable</c> and of each request.</summary>
public sealed class BrokerRetryOptions
{
    /// <summary>Longest total wait following <c>Retry-After</c>; default 30 s, zero = no retry.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long one request may take, body included; default 10 s.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
