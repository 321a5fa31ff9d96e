"""Fine-tuning: model loading, recipes, collators and trainers."""
