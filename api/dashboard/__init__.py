"""The dashboard's building blocks: Plotly figures (``figures``) and HTML pages (``pages``);
the routes that serve them are api.routes.dashboard."""
