"""Intel services, one transaction per function, each taking the acting user: indicators and sightings
(indicators), correlation alerts (correlation), warninglists (warninglists)."""
