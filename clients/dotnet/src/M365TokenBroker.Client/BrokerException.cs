namespace M365TokenBroker.Client;

/// <summary>What the broker advises when a connection needs a person (its problem body's <c>remedy</c>).</summary>
public sealed record BrokerRemedy(string Kind, string Text);

/// <summary>
/// Every failure of <see cref="BrokerTokenCredential"/>. <see cref="Code"/> is the broker's problem code
/// (<c>consent_required</c>, <c>scope_not_allowed</c>, <c>upstream_unavailable</c>, …) or one of this
/// client's: <c>broker_unreachable</c>, <c>broker_timeout</c>, <c>invalid_response</c>,
/// <c>caller_credential_failed</c>. The message never holds a token or a key. Cancellation by the
/// caller's token is an <see cref="OperationCanceledException"/>, as everywhere in .NET.
/// </summary>
public sealed class BrokerException : Exception
{
    public BrokerException(string code, string message, int status, BrokerRemedy? remedy = null,
        TimeSpan? retryAfter = null, string? consentUrl = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Status = status;
        Remedy = remedy;
        RetryAfter = retryAfter;
        ConsentUrl = consentUrl;
    }

    /// <summary>Stable code: switch on it.</summary>
    public string Code { get; }

    /// <summary>HTTP status of the broker's answer; 0 when there was none.</summary>
    public int Status { get; }

    /// <summary>What to do, when the broker said (null when nothing a person can do).</summary>
    public BrokerRemedy? Remedy { get; }

    /// <summary>How long the broker asked to wait (<c>Retry-After</c>), when it said.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary><c>consent_required</c>: where a person consents again.</summary>
    public string? ConsentUrl { get; }
}
