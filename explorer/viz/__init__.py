"""Pictures from results: RGB arrays and plotly figures (no gradio imports)."""
