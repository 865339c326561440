"""The HTTP client of Socrata's SODA 2.1 and SODA3 APIs: no Dagster here, only a frozen
`SocrataSettings` that the resource builds."""
