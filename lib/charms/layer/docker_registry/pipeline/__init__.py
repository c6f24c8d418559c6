"""One hook: decide (plan, render, proxy, clients, status) and apply/record."""
