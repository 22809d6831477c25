"""The public desk: data requests, error reports and comments from the
public, answered by departments on the working-day clock; followers,
notifications and the league table of response times."""
