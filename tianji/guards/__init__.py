"""Request guards: who is calling (auth) and, later, limits and budgets."""
