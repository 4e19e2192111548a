namespace M365TokenBroker.Client;

/// <summary>
/// When asked scopes are "the connection's own", so <c>scope=</c> is left out (the same rule as the
/// Node client): none at all; or each among the scopes the broker reported for an answer without
/// <c>scope=</c> (case-insensitive, Graph's short names read as <c>https://graph.microsoft.com/X</c>);
/// or <c>{resource}/.default</c> for a resource of those.
/// </summary>
internal static class Scopes
{
    private const string Graph = "https://graph.microsoft.com";
    private static readonly HashSet<string> Oidc = new(StringComparer.OrdinalIgnoreCase) { "openid", "profile", "email", "offline_access" };

    public static string[] Normalize(IEnumerable<string> scopes) =>
        scopes.SelectMany(s => s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).Distinct(StringComparer.Ordinal).ToArray();

    private static string FullName(string scope) =>
        IsShortName(scope) && !Oidc.Contains(scope) ? $"{Graph}/{scope}".ToLowerInvariant() : scope.ToLowerInvariant();

    private static bool IsShortName(string scope) =>
        scope.Length > 0 && char.IsAsciiLetter(scope[0]) && scope.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    private static string ResourceOf(string scope)
    {
        var slash = scope.LastIndexOf('/');
        return slash < 0 ? "" : scope[..slash];
    }

    public static HashSet<string> OwnSet(string reported) => Normalize(new[] { reported }).Select(FullName).ToHashSet();

    public static bool IsOwn(IReadOnlyCollection<string> asked, HashSet<string> own)
    {
        if (asked.Count == 0) return true;
        var resources = own.Select(ResourceOf).ToHashSet();
        return asked.All(scope =>
        {
            var full = FullName(scope);
            return own.Contains(full) || (full.EndsWith("/.default", StringComparison.Ordinal) && resources.Contains(ResourceOf(full)));
        });
    }
}
