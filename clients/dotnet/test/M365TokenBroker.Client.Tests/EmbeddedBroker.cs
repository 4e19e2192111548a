using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace M365TokenBroker.Client.Tests;

/// <summary>
/// The broker's embedded host (<c>node dist/src/local/main.js</c>, what <c>npm start</c> runs) as a child
/// process with a temp data dir and no configuration, so it serves the <c>sandbox</c> connection against
/// its built-in Entra simulator; then a person's consent played over HTTP (start → sign-in form →
/// callback), as test/fakes/consent-client.ts does. Builds the broker first when dist/ is missing.
/// </summary>
public sealed class EmbeddedBroker : IAsyncLifetime
{
    public const string FunctionKey = "dotnet-e2e-function-key-0123456789";
    public const string Account = "ana@contoso.com";

    private Process? _process;
    private readonly StringBuilder _output = new();
    private string _dataDir = "";

    public Uri Url { get; private set; } = null!;

    /// <summary>Everything the broker printed (for the leak check).</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "package.json")) && Directory.Exists(Path.Combine(dir.FullName, "clients", "dotnet")))
                return dir.FullName;
        }
        throw new InvalidOperationException("The repository root (package.json beside clients/dotnet) was not found.");
    }

    public async Task InitializeAsync()
    {
        var root = RepoRoot();
        var main = Path.Combine(root, "dist", "src", "local", "main.js");
        if (!File.Exists(main)) Run(root, "npm", "run build");
        var port = FreePort();
        Url = new Uri($"http://127.0.0.1:{port}");
        _dataDir = Directory.CreateTempSubdirectory("broker-dotnet-").FullName;
        var start = new ProcessStartInfo("node", $"\"{main}\"")
        {
            WorkingDirectory = _dataDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var name in new[] { "BROKER_CONNECTIONS", "KEY_VAULT_URL", "CALLER_AUTH", "ADMIN_AUTH", "WEBSITE_AUTH_ENABLED" })
            start.Environment.Remove(name);
        start.Environment["PORT"] = port.ToString();
        start.Environment["BROKER_DATA_DIR"] = Path.Combine(_dataDir, ".broker");
        start.Environment["BROKER_PUBLIC_URL"] = Url.ToString().TrimEnd('/');
        start.Environment["BROKER_FUNCTION_KEY"] = FunctionKey;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _process = Process.Start(start)!;
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (_output) _output.AppendLine(line);
            if (line.Contains("curl -H")) ready.TrySetResult();
        }
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.EnableRaisingEvents = true;
        _process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"The broker exited at start:\n{Output}"));
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await ConsentAsync("sandbox", Account);
    }

    /// <summary>A person connects <paramref name="connection"/> as <paramref name="account"/> (the sandbox's sign-in form).</summary>
    private async Task ConsentAsync(string connection, string account)
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false });
        using var startReq = new HttpRequestMessage(HttpMethod.Get, new Uri(Url, $"/api/start?connection={connection}"));
        startReq.Headers.Add("x-functions-key", FunctionKey);
        using var start = await http.SendAsync(startReq);
        Assert.Equal(HttpStatusCode.Found, start.StatusCode);
        var cookies = string.Join("; ", start.Headers.GetValues("Set-Cookie").Select(c => c.Split(';')[0]));
        var authorize = new Uri(Url, start.Headers.Location!);
        var page = await http.GetStringAsync(authorize);
        var action = WebUtility.HtmlDecode(Regex.Match(page, "<form[^>]*action=\"([^\"]*)\"", RegexOptions.IgnoreCase).Groups[1].Value);
        var fields = new List<KeyValuePair<string, string>>();
        foreach (Match input in Regex.Matches(page, "<input\\b[^>]*>", RegexOptions.IgnoreCase))
        {
            if (!Regex.IsMatch(input.Value, "type=\"hidden\"", RegexOptions.IgnoreCase)) continue;
            var name = Regex.Match(input.Value, "name=\"([^\"]*)\"").Groups[1].Value;
            var value = Regex.Match(input.Value, "value=\"([^\"]*)\"").Groups[1].Value;
            fields.Add(new(WebUtility.HtmlDecode(name), WebUtility.HtmlDecode(value)));
        }
        fields.Add(new("account", account));
        fields.Add(new("signin", "Sign in"));
        using var signIn = await http.PostAsync(new Uri(authorize, action), new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.Found, signIn.StatusCode);
        using var callbackReq = new HttpRequestMessage(HttpMethod.Get, new Uri(authorize, signIn.Headers.Location!));
        callbackReq.Headers.Add("Cookie", cookies);
        callbackReq.Headers.Add("Accept", "text/html");
        using var callback = await http.SendAsync(callbackReq);
        var body = await callback.Content.ReadAsStringAsync();
        Assert.True(callback.StatusCode == HttpStatusCode.OK, $"callback answered {(int)callback.StatusCode}");
        Assert.Contains(account, body);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void Run(string cwd, string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { WorkingDirectory = cwd, UseShellExecute = false })!;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {args} failed ({p.ExitCode}) in {cwd}");
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
    }
}
