"""The model API: the Model base class, discovery of model files, and the torch and scikit-learn helpers models build on."""
