using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace M365TokenBroker.Client.Tests;

/// <summary>
/// A scripted stand-in for <c>GET /api/token</c> over raw TCP on 127.0.0.1, so it can answer what the
/// real broker will not on demand: HTML, garbage, a truncated body, silence, 503 with Retry-After.
/// </summary>
public sealed class ScriptedBroker : IAsyncDisposable
{
    public sealed record Request(string Path, Dictionary<string, string> Query, Dictionary<string, string> Headers);

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<TcpClient> _clients = new();
    private int _count;

    public ConcurrentQueue<Request> Requests { get; } = new();

    /// <summary>The answer to the n-th request (1-based): raw HTTP written to the stream, or nothing (silence).</summary>
    public Func<Request, int, Stream, Task> Handler { get; set; } = (_, _, s) => WriteJson(s, 200, TokenBody());

    public Uri Url { get; }

    public ScriptedBroker()
    {
        _listener.Start();
        Url = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");
        _ = AcceptLoop();
    }

    public static string NewToken() => $"tok-{Guid.NewGuid():N}";

    public static string TokenBody(int lifetimeSec = 3600, string scope = "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read", string? token = null) =>
        $$"""{"access_token":"{{token ?? NewToken()}}","token_type":"Bearer","expires_in":{{lifetimeSec}},"expires_on":{{DateTimeOffset.UtcNow.ToUnixTimeSeconds() + lifetimeSec}},"scope":"{{scope}}"}""";

    public static Task WriteJson(Stream s, int status, string body, string extraHeaders = "") =>
        WriteRaw(s, status, status == 200 ? "application/json" : "application/problem+json", body, extraHeaders);

    public static async Task WriteRaw(Stream s, int status, string contentType, string body, string extraHeaders = "")
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var head = $"HTTP/1.1 {status} X\r\ncontent-type: {contentType}\r\ncontent-length: {bytes.Length}\r\nconnection: close\r\n{extraHeaders}\r\n";
        await s.WriteAsync(Encoding.ASCII.GetBytes(head));
        await s.WriteAsync(bytes);
        await s.FlushAsync();
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch { return; }
            _clients.Add(client);
            _ = Serve(client);
        }
    }

    private async Task Serve(TcpClient client)
    {
        try
        {
            var stream = client.GetStream();
            var buffer = new byte[16384];
            var head = new StringBuilder();
            while (!head.ToString().Contains("\r\n\r\n"))
            {
                var n = await stream.ReadAsync(buffer, _stop.Token);
                if (n == 0) return;
                head.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
            var lines = head.ToString().Split("\r\n");
            var target = lines[0].Split(' ')[1];
            var uri = new Uri(Url, target);
            var query = uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => p.Split('=', 2)).ToDictionary(p => Uri.UnescapeDataString(p[0]), p => Uri.UnescapeDataString(p.Length > 1 ? p[1] : ""));
            var headers = lines.Skip(1).TakeWhile(l => l.Length > 0).Select(l => l.Split(':', 2))
                .ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
            var request = new Request(uri.AbsolutePath, query, headers);
            Requests.Enqueue(request);
            await Handler(request, Interlocked.Increment(ref _count), stream);
        }
        catch
        {
            // The client went away; nothing to answer.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var c in _clients) c.Dispose();
        await Task.CompletedTask;
    }
}
