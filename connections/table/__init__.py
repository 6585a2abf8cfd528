"""The connections table as a component (``context``: filters, counts, a page of rows; ``rows``:
what each row shows; ``columns``: the columns and their order), for the table page and an
environment's page."""

from .context import page_rows, render_table_page, table_context

__all__ = ["page_rows", "render_table_page", "table_context"]
