using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs.TestSupport;

/// <summary>One captured log entry: its level and category, and its full text (message, exception, structured values).</summary>
public sealed record CapturedLogEntry(LogLevel Level, string Category, EventId EventId, string Text)
{
    public override string ToString() => $"{Level} {Category}[{EventId.Id}] {Text}";
}

/// <summary>A logger provider of one host that records every entry of every category and level.</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLogEntry> _entries = new();

    public IReadOnlyList<CapturedLogEntry> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = new StringBuilder(formatter(state, exception));
            if (exception is not null)
            {
                text.Append('\n').Append(exception);
            }

            if (state is IEnumerable<KeyValuePair<string, object?>> values)
            {
                foreach (var (key, value) in values)
                {
                    text.Append(' ').Append(key).Append('=').Append(value);
                }
            }

            owner._entries.Enqueue(new CapturedLogEntry(logLevel, category, eventId, text.ToString()));
        }
    }
}
