using System.Globalization;
using Workflow.Jobs.Sample.Configuration;

namespace Workflow.Jobs.Sample.FakeApi;

/// <summary>The operations of the fake external API (also the names accepted by <c>POST /api/fake-api/failures</c>).</summary>
public static class FakeApiOperations
{
    /// <summary>Finds a customer by e-mail or creates it.</summary>
    public const string GetOrCreateCustomer = "get_or_create_customer";

    /// <summary>Creates a subscription.</summary>
    public const string CreateSubscription = "create_subscription";

    /// <summary>Creates an administrator user.</summary>
    public const string CreateAdminUser = "create_admin_user";

    /// <summary>Sends a welcome e-mail.</summary>
    public const string SendWelcomeEmail = "send_welcome_email";

    /// <summary>Publishes a usage report.</summary>
    public const string PublishReport = "publish_report";

    /// <summary>Cancels (deletes) a subscription: the undo of <see cref="CreateSubscription"/>.</summary>
    public const string CancelSubscription = "cancel_subscription";

    /// <summary>Deletes an administrator user: the undo of <see cref="CreateAdminUser"/>.</summary>
    public const string DeleteAdminUser = "delete_admin_user";

    /// <summary>Every operation.</summary>
    public static IReadOnlyList<string> All { get; } =
        [GetOrCreateCustomer, CreateSubscription, CreateAdminUser, SendWelcomeEmail, PublishReport, CancelSubscription, DeleteAdminUser];
}

/// <summary>The fake API did not answer (a simulated outage). The request may have been applied before the answer was lost.</summary>
public sealed class FakeApiUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FakeApiUnavailableException() { }

    /// <summary>Creates the exception.</summary>
    public FakeApiUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public FakeApiUnavailableException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>A customer of the fake API.</summary>
public sealed record FakeCustomer(string Id, string Name, string Email, string Country);

/// <summary>A subscription of the fake API.</summary>
public sealed record FakeSubscription(string Id, string CustomerId, string Plan, int Seats);

/// <summary>A user of the fake API.</summary>
public sealed record FakeUser(string Id, string CustomerId, string Email, string Name);

/// <summary>A sent e-mail of the fake API.</summary>
public sealed record FakeEmail(string Id, string To, string Subject);

/// <summary>Simulated failures for the calls of one caller: the first <paramref name="Times"/> calls made under <paramref name="Scope"/> fail.</summary>
/// <param name="Scope">Who is calling (a step record id), so that a step fails N times however many calls each attempt makes.</param>
/// <param name="Times">How many calls fail.</param>
public sealed record FakeApiFailurePlan(string Scope, int Times);

/// <summary>Counts of what the fake API holds.</summary>
public sealed record FakeApiStats(int Customers, int Subscriptions, int Users, int Emails, int Reports, long Calls, long SimulatedFailures,
    IReadOnlyDictionary<string, int> ArmedFailures);

/// <summary>
/// An in-process stand-in for the external systems a provisioning workflow talks to (CRM, billing,
/// identity, mail). One per host (singleton), state in memory.
/// <para>
/// Every write takes an idempotency key (derived from the step's <see cref="StepContext.StepId"/>): a
/// repeated key returns the first call's result instead of creating a duplicate. Failures are simulated
/// per caller with a <see cref="FakeApiFailurePlan"/> (the first N calls made under one scope — a step
/// record — fail) or armed for the next calls of an operation (<see cref="ArmFailures"/>). A simulated
/// failure happens <em>after</em> the request was applied — the answer is lost — which is exactly the
/// case idempotency keys exist for.
/// </para>
/// </summary>
public sealed class FakeExternalApi
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly TimeSpan _latency;
    private readonly Dictionary<string, FakeCustomer> _customersByEmail = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<FakeSubscription> _subscriptions = [];
    private readonly List<FakeUser> _users = [];
    private readonly List<FakeEmail> _emails = [];
    private readonly List<string> _reports = [];
    private readonly Dictionary<(string Operation, string Key), object> _results = [];
    private readonly Dictionary<string, int> _scopeCalls = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _armed = new(StringComparer.Ordinal);
    private long _calls;
    private long _failures;
    private int _sequence;

    /// <summary>Creates the fake API.</summary>
    public FakeExternalApi(TimeProvider time, SampleHostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _time = time;
        _latency = settings.FakeApiLatency;
    }

    /// <summary>Makes the next <paramref name="times"/> calls of <paramref name="operation"/> fail (after being applied).</summary>
    /// <exception cref="ArgumentException">Unknown operation or a negative count.</exception>
    public void ArmFailures(string operation, int times)
    {
        if (!FakeApiOperations.All.Contains(operation))
        {
            throw new ArgumentException($"Unknown operation '{operation}'; expected one of: {string.Join(", ", FakeApiOperations.All)}.", nameof(operation));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(times);
        lock (_lock)
        {
            if (times == 0)
            {
                _armed.Remove(operation);
            }
            else
            {
                _armed[operation] = times;
            }
        }
    }

    /// <summary>Counts of what the API holds.</summary>
    public FakeApiStats GetStats()
    {
        lock (_lock)
        {
            return new FakeApiStats(_customersByEmail.Count, _subscriptions.Count, _users.Count, _emails.Count, _reports.Count, _calls, _failures,
                new Dictionary<string, int>(_armed, StringComparer.Ordinal));
        }
    }

    /// <summary>The subscriptions of a customer.</summary>
    public IReadOnlyList<FakeSubscription> GetSubscriptions(string customerId)
    {
        lock (_lock)
        {
            return _subscriptions.Where(s => s.CustomerId == customerId).ToList();
        }
    }

    /// <summary>The users of a customer.</summary>
    public IReadOnlyList<FakeUser> GetUsers(string customerId)
    {
        lock (_lock)
        {
            return _users.Where(u => u.CustomerId == customerId).ToList();
        }
    }

    /// <summary>Finds the customer with this e-mail or creates it. Returns the customer and whether it was created.</summary>
    public Task<(FakeCustomer Customer, bool Created)> GetOrCreateCustomerAsync(string name, string email, string country, string idempotencyKey,
        FakeApiFailurePlan? failures, CancellationToken cancellationToken)
        => CallAsync(FakeApiOperations.GetOrCreateCustomer, idempotencyKey, failures, () =>
        {
            if (_customersByEmail.TryGetValue(email, out var existing))
            {
                return (existing, false);
            }

            var customer = new FakeCustomer(NewId("cus"), name, email, country);
            _customersByEmail.Add(email, customer);
            return (customer, true);
        }, cancellationToken);

    /// <summary>Creates a subscription for a customer.</summary>
    public Task<FakeSubscription> CreateSubscriptionAsync(string customerId, string plan, int seats, string idempotencyKey, FakeApiFailurePlan? failures,
        CancellationToken cancellationToken)
        => CallAsync(FakeApiOperations.CreateSubscription, idempotencyKey, failures, () =>
        {
            var subscription = new FakeSubscription(NewId("sub"), customerId, plan, seats);
            _subscriptions.Add(subscription);
            return subscription;
        }, cancellationToken);

    /// <summary>Creates an administrator user of a customer.</summary>
    public Task<FakeUser> CreateAdminUserAsync(string customerId, string email, string name, string idempotencyKey, FakeApiFailurePlan? failures,
        CancellationToken cancellationToken)
        => CallAsync(FakeApiOperations.CreateAdminUser, idempotencyKey, failures, () =>
        {
            var user = new FakeUser(NewId("usr"), customerId, email, name);
            _users.Add(user);
            return user;
        }, cancellationToken);

    /// <summary>Sends a welcome e-mail.</summary>
    public Task<FakeEmail> SendWelcomeEmailAsync(string to, string subject, string idempotencyKey, FakeApiFailurePlan? failures, CancellationToken cancellationToken)
        => CallAsync(FakeApiOperations.SendWelcomeEmail, idempotencyKey, failures, () =>
        {
            var email = new FakeEmail(NewId("msg"), to, subject);
            _emails.Add(email);
            return email;
        }, cancellationToken);

    /// <summary>Cancels a subscription (removes it); true when it existed. Idempotent: cancelling a cancelled subscription changes nothing.</summary>
    public Task<bool> CancelSubscriptionAsync(string subscriptionId, string idempotencyKey, CancellationToken cancellationToken)
        => CallAsync(FakeApiOperations.CancelSubscription, idempotencyKey, null, () => _subscriptions.RemoveAll(s => s.Id == subscriptionId) > 0, cancellationToken);

    /// <summary>Deletes an administrator user; true when it existed. Idempotent like <see cref="CancelSubscriptionAsync"/>.</summary>
    public Task<bool> DeleteAdminUserAsync(string userId, string idempotencyKey, CancellationToken cancellationToken)
        => CallAsync(FakeApiOperations.DeleteAdminUser, idempotencyKey, null, () => _users.RemoveAll(u => u.Id == userId) > 0, cancellationToken);

    /// <summary>Publishes a report; returns its id.</summary>
    public Task<string> PublishReportAsync(string channel, string text, string idempotencyKey, CancellationToken cancellationToken)
        => CallAsync(FakeApiOperations.PublishReport, idempotencyKey, null, () =>
        {
            var id = NewId("rpt");
            _reports.Add($"{id} [{channel}] {text}");
            return id;
        }, cancellationToken);

    private async Task<T> CallAsync<T>(string operation, string idempotencyKey, FakeApiFailurePlan? failures, Func<T> apply, CancellationToken cancellationToken)
        where T : notnull
    {
        ArgumentException.ThrowIfNullOrEmpty(idempotencyKey);
        if (_latency > TimeSpan.Zero)
        {
            await Task.Delay(_latency, _time, cancellationToken).ConfigureAwait(false);
        }

        lock (_lock)
        {
            _calls++;
            var key = (operation, idempotencyKey);
            if (!_results.TryGetValue(key, out var result))
            {
                result = apply();
                _results[key] = result;
            }

            string? reason = null;
            var call = failures is null ? 0 : _scopeCalls[failures.Scope] = _scopeCalls.GetValueOrDefault(failures.Scope) + 1;
            if (failures is not null && call <= failures.Times)
            {
                reason = string.Create(CultureInfo.InvariantCulture, $"simulated failure {call} of {failures.Times}");
            }
            else if (_armed.TryGetValue(operation, out var armed) && armed > 0)
            {
                _armed[operation] = armed - 1;
                if (armed == 1)
                {
                    _armed.Remove(operation);
                }

                reason = "failure armed through POST /api/fake-api/failures";
            }

            if (reason is not null)
            {
                _failures++;
                throw new FakeApiUnavailableException($"Fake API timed out on {operation} ({reason}).");
            }

            return (T)result;
        }
    }

    private string NewId(string prefix) => string.Create(CultureInfo.InvariantCulture, $"{prefix}_{++_sequence:D5}");
}
